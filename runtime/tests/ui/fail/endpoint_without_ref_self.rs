struct App;

impl App {
    #[traced::endpoint("/")]
    fn run(&mut self, prompt: String) -> usize {
        prompt.len()
    }
}

fn main() {
    App.run(String::new());
}
