//! `text-to-image samples [DIR [WEIGHTS]]`: one image per colour and shape, written to
//! `DIR` with the Markdown table that shows them beside their prompts, and
//! what each looks like to the colour and shape checks the tests run.

use std::path::{Path, PathBuf};

use tch::nn;
use tch::{Device, Kind};

use crate::data::SIZE;
use crate::diffusion;
use crate::model::UNet;
use crate::prompt::{COLOURS, Condition, SHAPES};

const TILE_SCALE: usize = 3;

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

/// The pixels unlike the image's border (the shape), and the border's mean colour.
fn foreground(rgb: &[u8]) -> (Vec<bool>, [f32; 3]) {
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
    let mask = (0..SIZE * SIZE)
        .map(|i| {
            let p = pixel(i % SIZE, i / SIZE);
            (0..3).map(|c| (p[c] - border[c]).powi(2)).sum::<f32>().sqrt() > 80.0
        })
        .collect();
    (mask, border)
}

/// The mean colour of the shape.
pub fn foreground_colour(rgb: &[u8]) -> [f32; 3] {
    let (mask, border) = foreground(rgb);
    let mut sum = [0.0f32; 3];
    let mut n = 0.0;
    for (i, _) in mask.iter().enumerate().filter(|(_, inside)| **inside) {
        (0..3).for_each(|c| sum[c] += rgb[i * 3 + c] as f32);
        n += 1.0;
    }
    if n == 0.0 { border } else { sum.map(|c| c / n) }
}

/// Which shape the foreground is, by how much of its bounding box it fills:
/// a square all of it, a circle π/4, a triangle half.
pub fn shape_of(rgb: &[u8]) -> &'static str {
    let (mask, _) = foreground(rgb);
    let inside: Vec<(usize, usize)> =
        mask.iter().enumerate().filter(|(_, inside)| **inside).map(|(i, _)| (i % SIZE, i / SIZE)).collect();
    let (Some(left), Some(right)) = (inside.iter().map(|p| p.0).min(), inside.iter().map(|p| p.0).max()) else {
        return "nothing";
    };
    let (top, bottom) = (inside.iter().map(|p| p.1).min().unwrap_or(0), inside.iter().map(|p| p.1).max().unwrap_or(0));
    let fill = inside.len() as f32 / ((right - left + 1) * (bottom - top + 1)) as f32;
    if fill >= 0.9 {
        "square"
    } else if fill >= 0.64 {
        "circle"
    } else {
        "triangle"
    }
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
    let out = args.first().map_or_else(|| PathBuf::from("examples/diffusion/samples"), PathBuf::from);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let weights = args.get(1).map_or_else(default_weights, PathBuf::from);
    let (_store, model) = load(&weights)?;
    let mut table = format!("| | {} |\n|---{}|\n", COLOURS.map(|c| c.0).join(" | "), "|---".repeat(COLOURS.len()));
    let mut right = (0, 0);
    for (row, shape) in SHAPES.iter().enumerate() {
        table.push_str(&format!("| **{shape}** |"));
        for (column, (colour, _)) in COLOURS.iter().enumerate() {
            let prompt = format!("a {colour} {shape}");
            let rgb = generate(&model, &prompt, 20, (row * 10 + column) as u64);
            let (seen_colour, seen_shape) = (nearest_colour(foreground_colour(&rgb)), shape_of(&rgb));
            println!("{prompt}: looks like a {seen_colour} {seen_shape}");
            right.0 += usize::from(seen_colour == *colour);
            right.1 += usize::from(seen_shape == *shape);
            let name = format!("{colour}-{shape}.png");
            write_png(&out.join(&name), &rgb)?;
            table.push_str(&format!(" ![{prompt}](samples/{name}) |"));
        }
        table.push('\n');
    }
    let total = SHAPES.len() * COLOURS.len();
    println!("colour right in {}/{total}, shape right in {}/{total}\n\n{table}", right.0, right.1);
    Ok(())
}

/// Writes a 32×32 image scaled up for viewing.
fn write_png(path: &Path, rgb: &[u8]) -> Result<(), String> {
    let side = SIZE * TILE_SCALE;
    let mut scaled = vec![0u8; side * side * 3];
    for y in 0..side {
        for x in 0..side {
            let source = ((y / TILE_SCALE) * SIZE + x / TILE_SCALE) * 3;
            let target = (y * side + x) * 3;
            scaled[target..target + 3].copy_from_slice(&rgb[source..source + 3]);
        }
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().and_then(|mut w| w.write_image_data(&scaled)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Rng};

    /// The checks that judge generated images judge the training images right.
    #[test]
    fn the_checks_read_the_training_images_right() {
        let mut rng = Rng::new(3);
        let mut wrong = Vec::new();
        for _ in 0..200 {
            let (pixels, condition) = data::sample(&mut rng);
            let rgb: Vec<u8> = (0..SIZE * SIZE)
                .flat_map(|i| (0..3).map(move |c| c * SIZE * SIZE + i))
                .map(|index| ((pixels[index] + 1.0) * 127.5).round() as u8)
                .collect();
            let (colour, shape) = (COLOURS[condition.colour as usize - 1].0, SHAPES[condition.shape as usize - 1]);
            let seen = (nearest_colour(foreground_colour(&rgb)), shape_of(&rgb));
            if seen != (colour, shape) {
                wrong.push(format!("a {colour} {shape} read as a {} {}", seen.0, seen.1));
            }
        }
        assert!(wrong.is_empty(), "{} of 200 misread: {wrong:?}", wrong.len());
    }

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
