//! Prints the normalized form of `.eml` files (or of every message of an mbox with `--mbox`)
//! as JSON: `cargo run -p switchboard-email --example normalize -- FILE...`.

use switchboard_email::message::mbox;
use switchboard_email::{NormalizeOptions, normalize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let as_mbox = args.first().is_some_and(|a| a == "--mbox");
    if as_mbox {
        args.remove(0);
    }
    let options = NormalizeOptions::default();
    for path in args {
        let raw = std::fs::read(&path)?;
        let messages = if as_mbox {
            mbox::split(&raw)
        } else {
            vec![&raw[..]]
        };
        for message in messages {
            let parsed = normalize(message, &options);
            println!("{}", serde_json::to_string_pretty(&parsed)?);
        }
    }
    Ok(())
}
