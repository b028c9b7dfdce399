//! Prompt words → conditioning: a colour, a shape and a background, each an
//! index into a small vocabulary (0 = not said, which is also the
//! unconditional input of classifier-free guidance).

/// Colours the model knows, with their RGB values for training data.
pub const COLOURS: [(&str, [f32; 3]); 6] = [
    ("red", [0.9, 0.1, 0.1]),
    ("green", [0.1, 0.8, 0.2]),
    ("blue", [0.15, 0.3, 0.95]),
    ("yellow", [0.95, 0.85, 0.1]),
    ("purple", [0.6, 0.2, 0.8]),
    ("orange", [0.95, 0.5, 0.05]),
];

/// Shapes the model knows.
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];

/// Backgrounds the model knows, with their RGB values.
pub const BACKGROUNDS: [(&str, [f32; 3]); 3] =
    [("black", [0.05, 0.05, 0.05]), ("white", [0.95, 0.95, 0.95]), ("gray", [0.5, 0.5, 0.5])];

/// What a prompt asks for; `0` means "not said".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub colour: i64,
    pub shape: i64,
    pub background: i64,
}

impl Condition {
    /// The unconditional input.
    pub const NONE: Condition = Condition { colour: 0, shape: 0, background: 0 };

    /// Reads the known words of a prompt: "a red circle on white", "blue square".
    pub fn parse(prompt: &str) -> Condition {
        let mut condition = Condition::NONE;
        let mut after_on = false;
        for word in prompt.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase) {
            if word == "on" || word == "over" {
                after_on = true;
                continue;
            }
            let word = word.trim_end_matches('s');
            if let Some(i) = BACKGROUNDS.iter().position(|(name, _)| *name == word).filter(|_| after_on) {
                condition.background = i as i64 + 1;
            } else if let Some(i) = COLOURS.iter().position(|(name, _)| *name == word) {
                condition.colour = i as i64 + 1;
            } else if let Some(i) = SHAPES.iter().position(|name| *name == word) {
                condition.shape = i as i64 + 1;
            } else if let Some(i) = BACKGROUNDS.iter().position(|(name, _)| *name == word) {
                condition.background = i as i64 + 1;
            }
        }
        condition
    }

    /// How many of the three the prompt named.
    pub fn known_words(&self) -> usize {
        [self.colour, self.shape, self.background].iter().filter(|&&v| v > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_colour_shape_and_background() {
        assert_eq!(Condition::parse("a red circle"), Condition { colour: 1, shape: 1, background: 0 });
        assert_eq!(Condition::parse("Blue squares on white"), Condition { colour: 3, shape: 2, background: 2 });
        assert_eq!(Condition::parse("a white triangle on black"), Condition { colour: 0, shape: 3, background: 1 });
        assert_eq!(Condition::parse("something else entirely"), Condition::NONE);
    }
}
