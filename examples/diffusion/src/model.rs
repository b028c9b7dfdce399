//! The denoiser: a small UNet (about 0.6 M parameters) conditioned on the
//! diffusion time and on the prompt's colour, shape and background.

use tch::nn::{self, Module as _};
use tch::{Kind, Tensor};

use crate::prompt::{BACKGROUNDS, COLOURS, SHAPES};

const EMBEDDING: i64 = 128;
const GROUPS: i64 = 8;

fn conv(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(p, c_in, c_out, kernel, nn::ConvConfig { padding: kernel / 2, stride, ..Default::default() })
}

/// Two convolutions with the conditioning added in between, and a skip.
#[derive(Debug)]
struct ResBlock {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    condition: nn::Linear,
    scale: nn::Linear,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    skip: Option<nn::Conv2D>,
}

impl ResBlock {
    fn new(p: &nn::Path, c_in: i64, c_out: i64) -> Self {
        ResBlock {
            norm1: nn::group_norm(p / "norm1", GROUPS, c_in, Default::default()),
            conv1: conv(p / "conv1", c_in, c_out, 3, 1),
            condition: nn::linear(p / "condition", EMBEDDING, c_out, Default::default()),
            // Starts at zero: a block begins as a plain shift by the condition
            // and learns to gate its features per condition, which a shift alone
            // did too weakly to tell a square from a circle.
            scale: nn::linear(
                p / "scale",
                EMBEDDING,
                c_out,
                nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true },
            ),
            norm2: nn::group_norm(p / "norm2", GROUPS, c_out, Default::default()),
            conv2: conv(p / "conv2", c_out, c_out, 3, 1),
            skip: (c_in != c_out).then(|| conv(p / "skip", c_in, c_out, 1, 1)),
        }
    }

    fn forward(&self, x: &Tensor, embedding: &Tensor) -> Tensor {
        let h = self.conv1.forward(&self.norm1.forward(x).silu());
        let embedding = embedding.silu();
        let h = h + self.condition.forward(&embedding).unsqueeze(-1).unsqueeze(-1);
        let scale = self.scale.forward(&embedding).unsqueeze(-1).unsqueeze(-1);
        let h = self.conv2.forward(&(self.norm2.forward(&h) * (scale + 1.0)).silu());
        match &self.skip {
            Some(skip) => h + skip.forward(x),
            None => h + x,
        }
    }
}

/// The UNet: 32×32 → 16×16 → 8×8 and back, with skip connections.
#[derive(Debug)]
pub struct UNet {
    time1: nn::Linear,
    time2: nn::Linear,
    colour: nn::Embedding,
    shape: nn::Embedding,
    background: nn::Embedding,
    input: nn::Conv2D,
    down1: ResBlock,
    pool1: nn::Conv2D,
    down2: ResBlock,
    pool2: nn::Conv2D,
    middle1: ResBlock,
    middle2: ResBlock,
    up2: ResBlock,
    up1: ResBlock,
    out_norm: nn::GroupNorm,
    output: nn::Conv2D,
}

impl UNet {
    pub fn new(p: &nn::Path) -> Self {
        let (c1, c2, c3) = (32, 64, 96);
        UNet {
            time1: nn::linear(p / "time1", EMBEDDING, EMBEDDING, Default::default()),
            time2: nn::linear(p / "time2", EMBEDDING, EMBEDDING, Default::default()),
            colour: nn::embedding(p / "colour", COLOURS.len() as i64 + 1, EMBEDDING, Default::default()),
            shape: nn::embedding(p / "shape", SHAPES.len() as i64 + 1, EMBEDDING, Default::default()),
            background: nn::embedding(p / "background", BACKGROUNDS.len() as i64 + 1, EMBEDDING, Default::default()),
            input: conv(p / "input", 3, c1, 3, 1),
            down1: ResBlock::new(&(p / "down1"), c1, c1),
            pool1: conv(p / "pool1", c1, c1, 3, 2),
            down2: ResBlock::new(&(p / "down2"), c1, c2),
            pool2: conv(p / "pool2", c2, c2, 3, 2),
            middle1: ResBlock::new(&(p / "middle1"), c2, c3),
            middle2: ResBlock::new(&(p / "middle2"), c3, c3),
            up2: ResBlock::new(&(p / "up2"), c3 + c2, c2),
            up1: ResBlock::new(&(p / "up1"), c2 + c1, c1),
            out_norm: nn::group_norm(p / "out_norm", GROUPS, c1, Default::default()),
            output: conv(p / "output", c1, 3, 3, 1),
        }
    }

    /// Predicts v for images `x` at times `t` (in [0, 1]) under conditions
    /// given as three index tensors.
    pub fn forward(&self, x: &Tensor, t: &Tensor, colour: &Tensor, shape: &Tensor, background: &Tensor) -> Tensor {
        let time = self.time2.forward(&self.time1.forward(&timestep_embedding(t)).silu());
        let embedding =
            time + self.colour.forward(colour) + self.shape.forward(shape) + self.background.forward(background);
        let x = self.input.forward(x);
        let h1 = self.down1.forward(&x, &embedding);
        let h2 = self.down2.forward(&self.pool1.forward(&h1), &embedding);
        let m = self.middle1.forward(&self.pool2.forward(&h2), &embedding);
        let m = self.middle2.forward(&m, &embedding);
        let (_, _, height, width) = h2.size4().expect("NCHW");
        let u2 = Tensor::cat(&[m.upsample_nearest2d([height, width], None, None), h2], 1);
        let u2 = self.up2.forward(&u2, &embedding);
        let (_, _, height, width) = h1.size4().expect("NCHW");
        let u1 = Tensor::cat(&[u2.upsample_nearest2d([height, width], None, None), h1], 1);
        let u1 = self.up1.forward(&u1, &embedding);
        self.output.forward(&self.out_norm.forward(&u1).silu())
    }
}

/// Sinusoidal features of the diffusion time.
fn timestep_embedding(t: &Tensor) -> Tensor {
    let half = EMBEDDING / 2;
    let frequencies = (Tensor::arange(half, (Kind::Float, t.device())) * (-(10_000f64.ln()) / half as f64)).exp();
    let angles = (t * 1000.0).unsqueeze(-1) * frequencies.unsqueeze(0);
    Tensor::cat(&[angles.sin(), angles.cos()], -1)
}
