//! `text-to-image`: a small conditional diffusion model on tch (libtorch;
//! CUDA when present), served and traced with `traced`.
//!
//! `text-to-image` serves; `text-to-image train ...` trains the weights.

mod app;
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
        None | Some("serve") => traced::serve::<app::TextToImage>(),
        Some(other) => {
            eprintln!("text-to-image: unknown command {other:?}; usage: text-to-image [serve | train [--steps N] ...]");
            ExitCode::FAILURE
        }
    }
}
