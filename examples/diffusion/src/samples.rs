//! `text-to-image samples`: one image per colour and shape, in a grid (rows:
//! circle, square, triangle; columns: the colours in vocabulary order), for
//! people to judge the weights by eye; and the colour check the tests run.

use std::path::{Path, PathBuf};

use tch::nn;
use tch::{Device, Kind};

use crate::data::SIZE;
use crate::diffusion;
use crate::model::UNet;
use crate::prompt::{COLOURS, Condition, SHAPES};

const TILE_SCALE: usize = 4;

/// The weights the app ships with.
pub fn default_weights() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/tiny-unet.safetensors"))
}

pub fn load(weights: &Path) -> Result<(nn::VarStore, UNet), String> {
    let mut store = nn::VarStore::new(Device::Cpu);
    let model = UNet::new(&store.root());
    store.load(weights).map_err(|e| format!("{}: {e}", weights.display()))?;
    Ok((store, model))
}

/// A generated image as 32×32 RGB bytes.
pub fn generate(model: &UNet, prompt: &str, steps: usize, seed: u64) -> Vec<u8> {
    let image = diffusion::sample(model, Condition::parse(prompt), steps, 3.0, seed, Device::Cpu, |_| {});
    let pixels = ((image + 1.0) * 127.5).clamp(0.0, 255.0).to_kind(Kind::Uint8).permute([1, 2, 0]).contiguous();
    Vec::<u8>::try_from(pixels.view([-1])).unwrap_or_default()
}

/// The mean colour of the pixels unlike the image's border: the shape's.
pub fn foreground_colour(rgb: &[u8]) -> [f32; 3] {
    let pixel = |x: usize, y: usize| {
        let i = (y * SIZE + x) * 3;
        [rgb[i] as f32, rgb[i + 1] as f32, rgb[i + 2] as f32]
    };
    let mut border = [0.0f32; 3];
    let mut count = 0.0;
    for i in 0..SIZE {
        for (x, y) in [(i, 0), (i, SIZE - 1), (0, i), (SIZE - 1, i)] {
            let p = pixel(x, y);
            (0..3).for_each(|c| border[c] += p[c]);
            count += 1.0;
        }
    }
    border.iter_mut().for_each(|c| *c /= count);
    let mut sum = [0.0f32; 3];
    let mut n = 0.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let p = pixel(x, y);
            let distance: f32 = (0..3).map(|c| (p[c] - border[c]).powi(2)).sum::<f32>().sqrt();
            if distance > 80.0 {
                (0..3).for_each(|c| sum[c] += p[c]);
                n += 1.0;
            }
        }
    }
    if n == 0.0 { border } else { sum.map(|c| c / n) }
}

/// The vocabulary colour nearest to `rgb` (0–255).
pub fn nearest_colour(rgb: [f32; 3]) -> &'static str {
    COLOURS
        .iter()
        .min_by(|a, b| {
            let d = |c: &[f32; 3]| (0..3).map(|i| (c[i] * 255.0 - rgb[i]).powi(2)).sum::<f32>();
            d(&a.1).total_cmp(&d(&b.1))
        })
        .map_or("none", |c| c.0)
}

pub fn main(args: &[String]) -> Result<(), String> {
    let out = args.first().map_or_else(|| PathBuf::from("examples/diffusion/samples.png"), PathBuf::from);
    let (_store, model) = load(&default_weights())?;
    let tile = SIZE * TILE_SCALE;
    let (width, height) = (tile * COLOURS.len(), tile * SHAPES.len());
    let mut canvas = vec![0u8; width * height * 3];
    for (row, shape) in SHAPES.iter().enumerate() {
        for (column, (colour, _)) in COLOURS.iter().enumerate() {
            let prompt = format!("a {colour} {shape}");
            let rgb = generate(&model, &prompt, 20, (row * 10 + column) as u64);
            println!("{prompt}: foreground looks {}", nearest_colour(foreground_colour(&rgb)));
            for y in 0..tile {
                for x in 0..tile {
                    let source = ((y / TILE_SCALE) * SIZE + x / TILE_SCALE) * 3;
                    let target = ((row * tile + y) * width + column * tile + x) * 3;
                    canvas[target..target + 3].copy_from_slice(&rgb[source..source + 3]);
                }
            }
        }
    }
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().and_then(|mut w| w.write_image_data(&canvas)).map_err(|e| e.to_string())?;
    println!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped weights draw the colour the prompt names.
    #[test]
    fn the_shipped_weights_draw_the_colour_asked_for() {
        tch::set_num_threads(1);
        let (_store, model) = load(&default_weights()).expect("the shipped weights load");
        let mut wrong = Vec::new();
        for (colour, _) in COLOURS {
            for shape in ["circle", "square"] {
                let prompt = format!("a {colour} {shape} on black");
                let seen = nearest_colour(foreground_colour(&generate(&model, &prompt, 12, 5)));
                if seen != colour {
                    wrong.push(format!("{prompt:?} looked {seen}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}
