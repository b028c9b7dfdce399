//! `text-to-image`: a small conditional diffusion model on tch (libtorch;
//! CUDA when present), served and traced with `traced`.
//!
//! `text-to-image` serves; `text-to-image train ...` trains the weights;
//! `text-to-image bench ...` measures per-stage latency with tracing on and off.

mod app;
mod bench;
mod data;
mod diffusion;
mod model;
mod prompt;
mod train;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("train") => match train::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("train: {error}");
                ExitCode::FAILURE
            }
        },
        Some("bench") => match bench::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bench: {error}");
                ExitCode::FAILURE
            }
        },
        None | Some("serve") => traced::serve::<app::TextToImage>(),
        Some(other) => {
            eprintln!(
                "text-to-image: unknown command {other:?}; usage: text-to-image [serve | train [--steps N] ... | bench [--requests N] [--steps N]]"
            );
            ExitCode::FAILURE
        }
    }
}
