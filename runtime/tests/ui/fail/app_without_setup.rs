struct App;

#[traced::traced_app]
impl App {
    #[endpoint("/")]
    fn generate(&self) {}
}

fn main() {
    App.generate();
}
