struct App;

#[traced::traced_app(name = "worker")]
impl App {
    fn setup() -> Self {
        App
    }
}

fn main() {
    let _ = App::setup();
}
