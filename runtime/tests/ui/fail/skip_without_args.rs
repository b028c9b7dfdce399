#[traced::span(skip(api_key))]
fn upload(api_key: &str) {
    let _ = api_key;
}

fn main() {
    upload("sk");
}
