struct Tensor;

#[traced::span(args(latents, steps))]
fn denoise(latents: Tensor, steps: u32) -> Tensor {
    let _ = steps;
    latents
}

fn main() {
    denoise(Tensor, 4);
}
