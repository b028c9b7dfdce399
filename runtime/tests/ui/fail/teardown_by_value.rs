struct App;

#[traced::traced_app(service = "worker")]
impl App {
    fn setup() -> Self {
        App
    }

    fn teardown(self) {}
}

fn main() {
    App::setup().teardown();
}
