//! The served app: the Rust counterpart of the platform's SDXL example, with
//! a setup in its own startup trace and a span per stage of each request.

use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};
use traced::SpanAttributes;

use crate::diffusion;
use crate::model::UNet;
use crate::prompt::Condition;

const MODEL_NAME: &str = "tiny-unet";
/// Generated images are 32×32; they are written enlarged for people to see.
const SCALE: usize = 8;

#[derive(Deserialize, SpanAttributes)]
pub struct Input {
    /// Recorded as its length only: prompts stay out of traces.
    #[span_attr(name = "prompt.length", with = str::len)]
    prompt: String,
    #[serde(default = "default_steps")]
    #[span_attr]
    num_inference_steps: u32,
    #[serde(default = "default_guidance")]
    #[span_attr]
    guidance_scale: f64,
    #[serde(default)]
    #[span_attr]
    seed: u64,
    /// The caller's trace, for apps that send it in the body.
    #[serde(default)]
    trace_context: Option<traced::Carrier>,
}

fn default_steps() -> u32 {
    20
}

fn default_guidance() -> f64 {
    diffusion::DEFAULT_GUIDANCE
}

#[derive(Serialize)]
pub struct Output {
    /// The PNG, base64.
    image: String,
    trace_id: Option<String>,
    /// Where the PNG was written.
    path: String,
}

/// Why a request could not be served.
#[derive(Debug)]
pub enum GenerationError {
    /// The input asks for something out of range.
    BadInput(String),
    /// Writing the image failed.
    Upload(std::io::Error),
}

impl std::fmt::Display for GenerationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenerationError::BadInput(message) => f.write_str(message),
            GenerationError::Upload(error) => write!(f, "could not write the image: {error}"),
        }
    }
}

impl std::error::Error for GenerationError {}

impl traced::HttpError for GenerationError {
    fn status(&self) -> u16 {
        match self {
            GenerationError::BadInput(_) => 400,
            GenerationError::Upload(_) => 500,
        }
    }
}

#[derive(Debug)]
pub struct SetupError(String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// The network and the store its weights live in. libtorch tensors may move
/// between threads but not be shared, so requests take turns.
struct Model {
    unet: UNet,
    _weights: nn::VarStore,
}

pub struct TextToImage {
    model: std::sync::Mutex<Model>,
    device: Device,
    device_name: String,
    output_dir: PathBuf,
}

fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

#[traced::traced_app(service = "text-to-image")]
impl TextToImage {
    fn setup() -> Result<Self, SetupError> {
        let (device, device_name) = Self::cuda_probe();
        let threads = std::env::var("TORCH_THREADS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
        tch::set_num_threads(threads);
        let weights =
            env_path("TEXT_TO_IMAGE_WEIGHTS", concat!(env!("CARGO_MANIFEST_DIR"), "/weights/tiny-unet.safetensors"));
        let (store, model) = Self::build_model(device, &weights)?;
        let output_dir = env_path("TEXT_TO_IMAGE_OUTPUT", "out/images");
        std::fs::create_dir_all(&output_dir)
            .map_err(|e| SetupError(format!("cannot create {}: {e}", output_dir.display())))?;
        if device.is_cuda() {
            traced::set_device_sync(|| tch::Cuda::synchronize(0));
        }
        let model = std::sync::Mutex::new(Model { unet: model, _weights: store });
        let app = TextToImage { model, device, device_name, output_dir };
        app.warmup();
        Ok(app)
    }

    /// Loads libtorch's CUDA library before asking for CUDA: the linker drops
    /// it from the binary (nothing names its symbols), and without it CUDA is
    /// never seen. On a machine without a GPU this is a cheap no-op.
    #[span(name = "cuda-probe")]
    fn cuda_probe() -> (Device, String) {
        let loaded = load_cuda_library();
        let device = Device::cuda_if_available();
        let name =
            if device.is_cuda() { format!("cuda ({} devices)", tch::Cuda::device_count()) } else { "cpu".into() };
        traced::set_attribute("device", name.clone());
        traced::set_attribute("libtorch_cuda.loaded", loaded);
        (device, name)
    }

    #[span(name = "load-weights", attrs(model.name = MODEL_NAME, weights.path = weights.display().to_string()))]
    fn build_model(device: Device, weights: &std::path::Path) -> Result<(nn::VarStore, UNet), SetupError> {
        let mut store = nn::VarStore::new(device);
        let model = UNet::new(&store.root());
        store.load(weights).map_err(|e| SetupError(format!("cannot load weights from {}: {e}", weights.display())))?;
        store.freeze();
        let parameters: i64 = store.variables().values().map(|t| t.numel() as i64).sum();
        traced::set_attribute("model.parameters", parameters);
        Ok((store, model))
    }

    /// One generation at the request shape, so the first request is not the
    /// one paying for allocator and kernel warmup.
    #[span(attrs(num_inference_steps = 2))]
    fn warmup(&self) {
        let model = self.model.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let image = diffusion::sample(
            &model.unet,
            Condition::parse("red circle"),
            2,
            diffusion::DEFAULT_GUIDANCE,
            0,
            self.device,
            |_| {},
        );
        let _ = image.sum(Kind::Float);
    }

    #[endpoint("/", name = "text-to-image", attrs(model.name = MODEL_NAME, device = self.device_name.as_str()))]
    fn generate(&self, input: Input) -> Result<Output, GenerationError> {
        let condition = self.begin(&input)?;
        let latents = self.inference(condition, input.num_inference_steps, input.guidance_scale, input.seed);
        let pixels = self.decode(&latents);
        let (png, path) = self.upload(&pixels)?;
        Ok(Output {
            image: base64::engine::general_purpose::STANDARD.encode(png),
            trace_id: traced::current_trace_id(),
            path: path.display().to_string(),
        })
    }

    /// The same generation, answered as it goes: a `step` event per
    /// denoising step (its number, of how many, the time since the request
    /// began), then the image as the last event. The request's span covers
    /// the whole stream; each step is a span of its own.
    #[endpoint("/stream", name = "text-to-image-stream", attrs(model.name = MODEL_NAME, device = self.device_name.as_str()))]
    fn generate_stream(
        &self,
        input: Input,
    ) -> Result<impl Iterator<Item = Result<Progress, GenerationError>>, GenerationError> {
        let started = std::time::Instant::now();
        let condition = self.begin(&input)?;
        let model = self.model.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let steps = input.num_inference_steps as usize;
        let sampler = diffusion::Sampler::new(condition, steps, input.guidance_scale, input.seed, self.device);
        Ok(Denoising { app: self, model, sampler, started, finished: false })
    }

    /// Checks the input, records the GenAI request attributes, and encodes
    /// the prompt.
    fn begin(&self, input: &Input) -> Result<Condition, GenerationError> {
        if !(1..=200).contains(&input.num_inference_steps) {
            return Err(GenerationError::BadInput(format!(
                "num_inference_steps must be between 1 and 200, not {}",
                input.num_inference_steps
            )));
        }
        if !(0.0..=20.0).contains(&input.guidance_scale) {
            return Err(GenerationError::BadInput("guidance_scale must be between 0 and 20".into()));
        }
        traced::GenAiRequest::new("generate_content", MODEL_NAME)
            .output_type("image")
            .seed(i64::try_from(input.seed).unwrap_or(i64::MAX))
            .record();
        Ok(self.encode_prompt(&input.prompt))
    }

    /// One denoising step of a streamed generation.
    #[span(name = "denoise-step", sync, ai_kind = llm)]
    fn denoise_step(&self, unet: &UNet, sampler: &mut diffusion::Sampler) -> Option<usize> {
        sampler.step(unet)
    }

    #[span(name = "encode-prompt", ai_kind = embedding)]
    fn encode_prompt(&self, prompt: &str) -> Condition {
        let condition = Condition::parse(prompt);
        traced::set_attribute("prompt.known_words", condition.known_words() as i64);
        condition
    }

    /// The denoising loop: an event per step; `sync` makes the span end when
    /// the device is done, so on a GPU its duration is device time.
    #[span(sync, ai_kind = llm, args(steps, guidance), attrs(seed = seed))]
    fn inference(&self, condition: Condition, steps: u32, guidance: f64, seed: u64) -> Tensor {
        let model = self.model.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        diffusion::sample(&model.unet, condition, steps as usize, guidance, seed, self.device, |step| {
            traced::add_event("denoise-step", [("step", step as i64)]);
        })
    }

    /// Tensor in [-1, 1] → RGB bytes, enlarged.
    #[span]
    fn decode(&self, latents: &Tensor) -> Vec<u8> {
        let pixels =
            ((latents.to(Device::Cpu) + 1.0) * 127.5).clamp(0.0, 255.0).to_kind(Kind::Uint8).permute([1, 2, 0]);
        let (height, width) = (pixels.size()[0] as usize, pixels.size()[1] as usize);
        let flat: Vec<u8> = Vec::try_from(pixels.contiguous().view([-1])).unwrap_or_default();
        let mut enlarged = Vec::with_capacity(flat.len() * SCALE * SCALE);
        for y in 0..height * SCALE {
            for x in 0..width * SCALE {
                let source = ((y / SCALE) * width + x / SCALE) * 3;
                enlarged.extend_from_slice(&flat[source..source + 3]);
            }
        }
        traced::set_attribute("image.width", (width * SCALE) as i64);
        traced::set_attribute("image.height", (height * SCALE) as i64);
        enlarged
    }

    /// PNG encoding and the write to the output folder.
    #[span(ai_kind = tool)]
    fn upload(&self, pixels: &[u8]) -> Result<(Vec<u8>, PathBuf), GenerationError> {
        let side = (crate::data::SIZE * SCALE) as u32;
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let io = |e: png::EncodingError| GenerationError::Upload(std::io::Error::other(e));
        encoder.write_header().map_err(io)?.write_image_data(pixels).map_err(io)?;
        let name = traced::current_trace_id().unwrap_or_else(|| format!("{:x}", std::process::id()));
        let path = self.output_dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).map_err(GenerationError::Upload)?;
        traced::set_attribute("image.bytes", png.len() as i64);
        Ok((png, path))
    }
}

/// What a streamed generation sends: a step's progress, then the image.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// A denoising step is done.
    Step { step: u32, of: u32, elapsed_ms: f64 },
    /// The image, as the whole answer carries it.
    Image(Output),
}

/// A streamed generation in progress: the model held for its whole run, as
/// the one-piece answer holds it.
struct Denoising<'a> {
    app: &'a TextToImage,
    model: std::sync::MutexGuard<'a, Model>,
    sampler: diffusion::Sampler,
    started: std::time::Instant,
    finished: bool,
}

impl Iterator for Denoising<'_> {
    type Item = Result<Progress, GenerationError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.sampler.remaining() > 0 {
            let step = self.app.denoise_step(&self.model.unet, &mut self.sampler)?;
            let of = (step + self.sampler.remaining() + 1) as u32;
            let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            return Some(Ok(Progress::Step { step: step as u32 + 1, of, elapsed_ms }));
        }
        if self.finished {
            return None;
        }
        self.finished = true;
        let pixels = self.app.decode(&self.sampler.image());
        Some(self.app.upload(&pixels).map(|(png, path)| {
            Progress::Image(Output {
                image: base64::engine::general_purpose::STANDARD.encode(png),
                trace_id: traced::current_trace_id(),
                path: path.display().to_string(),
            })
        }))
    }
}

impl TextToImage {
    /// What the app runs on.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// One request's stages, each timed from outside its span, then the
    /// whole: what `bench` compares with tracing on and off.
    pub fn timed_request(&self, prompt: &str, steps: u32, seed: u64) -> [std::time::Duration; 5] {
        let started = std::time::Instant::now();
        let time = |since: &mut std::time::Instant| {
            let now = std::time::Instant::now();
            let took = now - *since;
            *since = now;
            took
        };
        let mut mark = started;
        let condition = self.encode_prompt(prompt);
        let encode = time(&mut mark);
        let latents = self.inference(condition, steps, diffusion::DEFAULT_GUIDANCE, seed);
        let inference = time(&mut mark);
        let pixels = self.decode(&latents);
        let decode = time(&mut mark);
        let upload_result = self.upload(&pixels);
        let upload = time(&mut mark);
        assert!(upload_result.is_ok(), "the image was written");
        [encode, inference, decode, upload, started.elapsed()]
    }
}

/// `dlopen`s libtorch_cuda so that tch's CUDA queries find it.
fn load_cuda_library() -> bool {
    unsafe extern "C" {
        fn dlopen(filename: *const std::ffi::c_char, flag: std::ffi::c_int) -> *mut std::ffi::c_void;
    }
    const RTLD_NOW: std::ffi::c_int = 2;
    const RTLD_GLOBAL: std::ffi::c_int = 0x100;
    let name = c"libtorch_cuda.so";
    // SAFETY: dlopen is given a valid C string and flags; the handle is kept
    // open for the life of the process, which is the point.
    let handle = unsafe { dlopen(name.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    !handle.is_null()
}
