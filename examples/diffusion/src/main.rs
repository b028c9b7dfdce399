//! `text-to-image`: a small conditional diffusion model on tch (libtorch;
//! CUDA when present), served and traced with `traced`.
//!
//! - `text-to-image` (or `serve`): serves `POST /` (HOST, PORT, OTEL_*).
//! - `text-to-image train [--steps N] [--batch N] [--lr X] [--threads N] [--out PATH] [--resume PATH]`
//! - `text-to-image samples [DIR [WEIGHTS]]`: an image per colour and shape, and their table.
//! - `text-to-image bench [--requests N] [--steps N]`: per-stage latency,
//!   tracing on and off.

mod app;
mod bench;
mod data;
mod diffusion;
mod model;
mod prompt;
mod samples;
mod train;

use std::process::ExitCode;

fn outcome(command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{command}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        None | Some("serve") => traced::serve::<app::TextToImage>(),
        Some("train") => outcome("train", train::main(rest)),
        Some("samples") => outcome("samples", samples::main(rest)),
        Some("bench") => outcome("bench", bench::main(rest)),
        Some(other) => {
            eprintln!("text-to-image: unknown command {other:?}: expected serve, train, samples or bench");
            ExitCode::FAILURE
        }
    }
}
