//! `sandflow secret set|list|delete`: the host's secrets. `set` reads the
//! value from stdin (one trailing newline is dropped), so it never shows in
//! a shell's history or a process list.

use std::io::Read;
use std::process::ExitCode;

use super::SecretCommand;
use super::client::{Client, Error};

pub async fn run(client: &Client, command: SecretCommand) -> Result<ExitCode, Error> {
    match command {
        SecretCommand::Set { name } => {
            let mut value = Vec::new();
            std::io::stdin()
                .read_to_end(&mut value)
                .map_err(|source| Error::File { path: "stdin".into(), source })?;
            if value.ends_with(b"\n") {
                value.pop();
                if value.ends_with(b"\r") {
                    value.pop();
                }
            }
            client.set_secret(&name, value).await?;
            println!("secret {name} set");
        }
        SecretCommand::List => {
            for s in client.secrets().await? {
                let field = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                println!("{}  updated {}", field("name"), field("updated_at"));
            }
        }
        SecretCommand::Delete { name } => {
            client.delete_secret(&name).await?;
            println!("secret {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
