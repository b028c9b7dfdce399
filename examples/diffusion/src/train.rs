//! `text-to-image train`: fits the UNet to procedurally drawn shapes and
//! writes the weights as safetensors.
//!
//! `train [--steps N] [--batch N] [--lr X] [--threads N] [--out PATH] [--resume PATH]`
//!
//! What it writes is an exponential moving average of the weights, not the
//! last step's: the average samples sharper shapes than any single step.

use std::path::PathBuf;
use std::time::Instant;

use tch::nn::{self, OptimizerConfig as _};
use tch::{Device, Tensor};

use crate::data::{self, Rng};
use crate::diffusion;
use crate::model::UNet;
use crate::prompt::Condition;

struct Options {
    steps: usize,
    batch: usize,
    lr: f64,
    threads: i32,
    out: PathBuf,
    seed: u64,
    resume: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        steps: 6000,
        batch: 32,
        lr: 2e-3,
        threads: 2,
        out: PathBuf::from("examples/diffusion/weights/tiny-unet.safetensors"),
        seed: 7,
        resume: None,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--steps" => options.steps = value.parse().map_err(|e| bad(&e))?,
            "--batch" => options.batch = value.parse().map_err(|e| bad(&e))?,
            "--lr" => options.lr = value.parse().map_err(|e| bad(&e))?,
            "--threads" => options.threads = value.parse().map_err(|e| bad(&e))?,
            "--seed" => options.seed = value.parse().map_err(|e| bad(&e))?,
            "--out" => options.out = PathBuf::from(value),
            "--resume" => options.resume = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

/// A batch of images and their conditions; some conditions are dropped in
/// whole or in part so the model also learns the unconditional image that
/// classifier-free guidance steers away from.
fn batch(rng: &mut Rng, size: usize, device: Device) -> (Tensor, Vec<Condition>) {
    let mut pixels = Vec::with_capacity(size * 3 * data::SIZE * data::SIZE);
    let mut conditions = Vec::with_capacity(size);
    for _ in 0..size {
        let (image, mut condition) = data::sample(rng);
        pixels.extend_from_slice(&image);
        if rng.unit() < 0.1 {
            condition = Condition::NONE;
        } else {
            if rng.unit() < 0.1 {
                condition.colour = 0;
            }
            if rng.unit() < 0.1 {
                condition.shape = 0;
            }
            if rng.unit() < 0.4 {
                condition.background = 0;
            }
        }
        conditions.push(condition);
    }
    let side = data::SIZE as i64;
    (Tensor::from_slice(&pixels).view([size as i64, 3, side, side]).to(device), conditions)
}

pub fn main(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    tch::set_num_threads(options.threads);
    let device = Device::cuda_if_available();
    let mut vs = nn::VarStore::new(device);
    let model = UNet::new(&vs.root());
    if let Some(weights) = &options.resume {
        // Partial: weights from before a layer was added leave it at its initial value.
        let missing = vs.load_partial(weights).map_err(|e| format!("cannot resume from {}: {e}", weights.display()))?;
        if !missing.is_empty() {
            eprintln!("resuming without {} new weights ({}, ...)", missing.len(), missing[0]);
        }
    }
    let mut average = nn::VarStore::new(device);
    let _average_model = UNet::new(&average.root());
    average.copy(&vs).map_err(|e| e.to_string())?;
    let parameters: i64 = vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum();
    eprintln!("training {parameters} parameters on {device:?} for {} steps of {}", options.steps, options.batch);
    let mut optimizer = nn::AdamW::default().build(&vs, options.lr).map_err(|e| e.to_string())?;
    let mut rng = Rng::new(options.seed);
    let started = Instant::now();
    let mut smoothed = None::<f64>;
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    for step in 0..options.steps {
        let progress = step as f64 / options.steps as f64;
        let warmup = (step as f64 / 200.0).min(1.0);
        let lr = options.lr * warmup * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        optimizer.set_lr(lr);
        let (images, conditions) = batch(&mut rng, options.batch, device);
        let loss = diffusion::loss(&model, &images, &conditions, &mut rng);
        optimizer.backward_step_clip(&loss, 1.0);
        let value = f64::try_from(&loss).unwrap_or(f64::NAN);
        smoothed = Some(smoothed.map_or(value, |s| 0.98 * s + 0.02 * value));
        update_average(&average, &vs, (step as f64 / (step as f64 + 10.0)).min(AVERAGE_DECAY));
        if (step + 1) % 100 == 0 {
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "step {:>6}  loss {:.4}  lr {lr:.2e}  {:.3} s/step",
                step + 1,
                smoothed.unwrap_or(value),
                elapsed / (step + 1) as f64
            );
        }
        if (step + 1) % 500 == 0 || step + 1 == options.steps {
            average.save(&options.out).map_err(|e| e.to_string())?;
        }
    }
    eprintln!("wrote {} after {:.0} s", options.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

const AVERAGE_DECAY: f64 = 0.999;

/// `average = decay * average + (1 - decay) * current`, for every weight; the
/// decay starts low so the average does not drag the first steps' weights along.
fn update_average(average: &nn::VarStore, current: &nn::VarStore, decay: f64) {
    let current = current.variables();
    tch::no_grad(|| {
        for (name, mut kept) in average.variables() {
            if let Some(now) = current.get(&name) {
                let blended = &kept * decay + now * (1.0 - decay);
                kept.copy_(&blended);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    /// A few steps from scratch and a resumed step write weights the app loads,
    /// the moving average included.
    #[test]
    fn trains_resumes_and_writes_weights_the_app_loads() {
        let dir = std::env::temp_dir().join(format!("text-to-image-train-{}", std::process::id()));
        let out = dir.join("tiny.safetensors").to_string_lossy().into_owned();
        let args = |extra: &[&str]| {
            let mut args: Vec<String> =
                ["--steps", "3", "--batch", "4", "--threads", "1", "--out", &out].map(String::from).to_vec();
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        };
        super::main(&args(&[])).expect("training runs");
        let (_store, _model) = crate::samples::load(std::path::Path::new(&out)).expect("the weights load");
        super::main(&args(&["--resume", &out])).expect("training resumes");
        assert!(super::main(&args(&["--steps", "x"])).unwrap_err().contains("--steps x"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
