struct App;

impl App {
    #[traced::endpoint("generate")]
    fn generate(&self) {}
}

fn main() {
    App.generate();
}
