struct App;

#[traced::traced_app]
impl App {
    fn setup() -> Self {
        App
    }

    #[endpoint("/")]
    fn generate(&self) {}

    #[endpoint("/")]
    fn generate_again(&self) {}
}

fn main() {
    let app = App::setup();
    app.generate();
    app.generate_again();
}
