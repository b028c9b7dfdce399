//! Procedurally drawn training images: a coloured shape at a random place and
//! size on a plain background, with the condition that describes it.

use crate::prompt::{BACKGROUNDS, COLOURS, Condition, SHAPES};

pub const SIZE: usize = 32;

/// A small, fast, seedable generator (xorshift), so data needs no crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// One image, channels first, values in [-1, 1], and its condition.
pub fn sample(rng: &mut Rng) -> (Vec<f32>, Condition) {
    let colour = rng.below(COLOURS.len());
    let shape = rng.below(SHAPES.len());
    let mut background = rng.below(BACKGROUNDS.len());
    // A white shape is not a colour the model learns; keep contrast.
    if BACKGROUNDS[background].1 == COLOURS[colour].1 {
        background = 0;
    }
    let fg = COLOURS[colour].1;
    let bg = BACKGROUNDS[background].1;
    // Centred, give or take two pixels, and about the same size: a shape
    // anywhere at any size was learnt as a blob of the right colour in the
    // training a CPU can give it (7400 steps of 32).
    let radius = 9.0 + rng.unit() * 2.0;
    let cx = SIZE as f32 / 2.0 + (rng.unit() - 0.5) * 4.0;
    let cy = SIZE as f32 / 2.0 + (rng.unit() - 0.5) * 4.0;
    let mut pixels = vec![0.0f32; 3 * SIZE * SIZE];
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (px, py) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let inside = match SHAPES[shape] {
                "circle" => px * px + py * py <= radius * radius,
                "square" => px.abs() <= radius * 0.85 && py.abs() <= radius * 0.85,
                _ => py <= radius * 0.8 && py >= -radius && px.abs() <= (py + radius) * 0.6,
            };
            let rgb = if inside { fg } else { bg };
            for c in 0..3 {
                pixels[c * SIZE * SIZE + y * SIZE + x] = rgb[c] * 2.0 - 1.0;
            }
        }
    }
    let condition = Condition { colour: colour as i64 + 1, shape: shape as i64 + 1, background: background as i64 + 1 };
    (pixels, condition)
}
