//! `text-to-image bench`: per-stage latency of N requests with tracing on
//! (spans recorded and exported as the environment says) and then off, in
//! one process, on whatever device the app finds.
//!
//! `bench [--requests N] [--steps N]`

use std::time::Duration;

use crate::app::TextToImage;

const STAGES: [&str; 5] = ["encode-prompt", "inference", "decode", "upload", "request"];

fn parse(args: &[String]) -> Result<(usize, u32), String> {
    let (mut requests, mut steps) = (20, 20);
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--requests" => requests = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?,
            "--steps" => steps = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok((requests, steps))
}

fn run(app: &TextToImage, requests: usize, steps: u32) -> Vec<[Duration; 5]> {
    (0..requests)
        .map(|i| {
            let prompt = ["a red circle", "a blue square on white", "a green triangle on gray"][i % 3];
            app.timed_request(prompt, steps, i as u64)
        })
        .collect()
}

fn mean_ms(samples: &[[Duration; 5]], stage: usize) -> f64 {
    samples.iter().map(|s| s[stage].as_secs_f64() * 1000.0).sum::<f64>() / samples.len().max(1) as f64
}

pub fn main(args: &[String]) -> Result<(), String> {
    let (requests, steps) = parse(args)?;
    let app = <TextToImage as traced::App>::setup().map_err(|e| e.to_string())?;
    let device = app.device_name().to_string();
    // A few unmeasured requests first, in each mode.
    run(&app, 2, steps);
    let on = run(&app, requests, steps);
    let report = traced::shutdown(std::time::Duration::from_secs(4));
    run(&app, 2, steps);
    let off = run(&app, requests, steps);
    println!("device {device}, {requests} requests of {steps} steps; mean ms per request");
    println!("| stage | tracing on | tracing off | difference |");
    println!("| --- | ---: | ---: | ---: |");
    for (index, stage) in STAGES.iter().enumerate() {
        let (with, without) = (mean_ms(&on, index), mean_ms(&off, index));
        println!("| {stage} | {with:.3} | {without:.3} | {:+.3} |", with - without);
    }
    println!("spans: {} exported, {} dropped", report.stats.exported, report.stats.dropped());
    Ok(())
}
