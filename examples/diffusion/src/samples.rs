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
    let image = diffusion::sample(
        model,
        Condition::parse(prompt),
        steps,
        diffusion::DEFAULT_GUIDANCE,
        seed,
        Device::Cpu,
        |_| {},
    );
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

/// Which shape the foreground is. A triangle fills half its bounding box,
/// a circle π/4 and a square all of it; and of the box's corners (beyond
/// |x| + |y| = 1.4 in half-widths from its centre) a square fills all, a circle
/// none. The corners tell a square with the soft, rounded edge of a generated
/// image from a circle better than the fill alone.
pub fn shape_of(rgb: &[u8]) -> &'static str {
    let (mask, _) = foreground(rgb);
    let inside: Vec<(usize, usize)> =
        mask.iter().enumerate().filter(|(_, inside)| **inside).map(|(i, _)| (i % SIZE, i / SIZE)).collect();
    let (Some(left), Some(right)) = (inside.iter().map(|p| p.0).min(), inside.iter().map(|p| p.0).max()) else {
        return "nothing";
    };
    let (top, bottom) = (inside.iter().map(|p| p.1).min().unwrap_or(0), inside.iter().map(|p| p.1).max().unwrap_or(0));
    let fill = inside.len() as f32 / ((right - left + 1) * (bottom - top + 1)) as f32;
    if fill < 0.62 {
        return "triangle";
    }
    let (centre_x, centre_y) = ((left + right) as f32 / 2.0, (top + bottom) as f32 / 2.0);
    let (half_width, half_height) = ((right - left + 1) as f32 / 2.0, (bottom - top + 1) as f32 / 2.0);
    let (mut corner, mut filled) = (0usize, 0usize);
    for y in top..=bottom {
        for x in left..=right {
            let reach = (x as f32 - centre_x).abs() / half_width + (y as f32 - centre_y).abs() / half_height;
            if reach > 1.4 {
                corner += 1;
                filled += usize::from(mask[y * SIZE + x]);
            }
        }
    }
    if corner > 0 && filled * 2 >= corner { "square" } else { "circle" }
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

/// One generated sample of the table, and what the checks read in it.
#[derive(Debug)]
pub struct Sample {
    pub colour: &'static str,
    pub shape: &'static str,
    pub seen_colour: &'static str,
    pub seen_shape: &'static str,
    pub rgb: Vec<u8>,
}

/// "a {colour} {shape}" for every colour and shape, 20 DDIM steps, the default
/// guidance, a fixed seed each.
pub fn grid(model: &UNet) -> Vec<Sample> {
    let mut samples = Vec::new();
    for (row, shape) in SHAPES.iter().enumerate() {
        for (column, (colour, _)) in COLOURS.iter().enumerate() {
            let rgb = generate(model, &format!("a {colour} {shape}"), 20, (row * 10 + column) as u64);
            let (seen_colour, seen_shape) = (nearest_colour(foreground_colour(&rgb)), shape_of(&rgb));
            samples.push(Sample { colour, shape, seen_colour, seen_shape, rgb });
        }
    }
    samples
}

pub fn main(args: &[String]) -> Result<(), String> {
    let out = args.first().map_or_else(|| PathBuf::from("examples/diffusion/samples"), PathBuf::from);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let weights = args.get(1).map_or_else(default_weights, PathBuf::from);
    let (_store, model) = load(&weights)?;
    let samples = grid(&model);
    let mut table = format!("| | {} |\n|---{}|\n", COLOURS.map(|c| c.0).join(" | "), "|---".repeat(COLOURS.len()));
    for row in samples.chunks(COLOURS.len()) {
        table.push_str(&format!("| **{}** |", row[0].shape));
        for sample in row {
            let (prompt, name) =
                (format!("a {} {}", sample.colour, sample.shape), format!("{}-{}.png", sample.colour, sample.shape));
            println!("{prompt}: looks like a {} {}", sample.seen_colour, sample.seen_shape);
            write_png(&out.join(&name), &sample.rgb)?;
            table.push_str(&format!(" ![{prompt}](samples/{name}) |"));
        }
        table.push('\n');
    }
    let right = |f: fn(&Sample) -> bool| samples.iter().filter(|s| f(s)).count();
    println!(
        "colour right in {}/{n}, shape right in {}/{n}\n\n{table}",
        right(|s| s.seen_colour == s.colour),
        right(|s| s.seen_shape == s.shape),
        n = samples.len()
    );
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

    /// The shipped weights draw the shape and the colour each prompt of the
    /// README's table names (one miss of each allowed: another CPU may round
    /// a pixel the other way).
    #[test]
    fn the_shipped_weights_draw_the_shape_and_colour_asked_for() {
        tch::set_num_threads(1);
        let (_store, model) = load(&default_weights()).expect("the shipped weights load");
        let table = grid(&model);
        let wrong_colour: Vec<_> = table.iter().filter(|s| s.seen_colour != s.colour).collect();
        let wrong_shape: Vec<_> = table.iter().filter(|s| s.seen_shape != s.shape).collect();
        assert!(wrong_colour.len() <= 1, "{wrong_colour:?}");
        assert!(wrong_shape.len() <= 1, "{wrong_shape:?}");
    }
}
