struct Worker;

trait Lifecycle {
    fn start() -> Self;
}

#[traced::traced_app]
impl Lifecycle for Worker {
    fn start() -> Self {
        Worker
    }
}

fn main() {
    let _ = Worker::start();
}
