//! `movies`: the fix-and-retry story, offline.
//!
//! `MoviesStats { titles }` submits one `PrintMovieStats { title }` per title.
//! Each looks its title up in a small catalog bundled in the component, sets
//! its display name to the title and logs the release date.
//!
//! Built plainly, `PrintMovieStats` is `v1.0` and has a bug: a title missing
//! from the catalog fails the task (`KeyError('Title')`). Built with
//! `--features fixed` it is `v1.1`, which logs "Movie release date not found"
//! instead. Upload v1.1 next to v1.0 and retry the failed job: the failed task
//! runs again on v1.1 (same major version, newer minor), and nothing that was
//! computed runs twice.

use sandflow_sdk::{Context, Error, Task};
use serde::{Deserialize, Serialize};

/// Titles and release dates the component knows.
const CATALOG: &[(&str, &str)] = &[
    ("The Matrix", "31 Mar 1999"),
    ("Shrek 2", "19 May 2004"),
    ("The Avengers", "04 May 2012"),
    ("Spirited Away", "20 Jul 2001"),
];

/// Submits one lookup per title.
#[derive(Serialize, Deserialize)]
pub struct MoviesStats {
    pub titles: Vec<String>,
}

impl Task for MoviesStats {
    const VERSION: &'static str = "v1.0";

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        for title in &self.titles {
            ctx.submit_subtask(&PrintMovieStats { title: title.clone() })?;
        }
        Ok(())
    }
}

/// Looks one title up and logs its release date.
#[derive(Serialize, Deserialize)]
pub struct PrintMovieStats {
    pub title: String,
}

impl Task for PrintMovieStats {
    const VERSION: &'static str = if cfg!(feature = "fixed") { "v1.1" } else { "v1.0" };

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        let _span = ctx.span("fetch-movie-stats").attr("movie.title", &self.title).enter();
        let found = CATALOG.iter().find(|(t, _)| *t == self.title);
        match found {
            Some((title, released)) => {
                ctx.set_display(title);
                ctx.info("Movie release date fetched").field("title", title).field("released", released);
            }
            None if cfg!(feature = "fixed") => {
                ctx.set_display(format!("NotFound: {}", self.title));
                ctx.info("Movie release date not found").field("title", &self.title);
            }
            None => return Err("KeyError('Title')".into()),
        }
        Ok(())
    }
}

sandflow_sdk::export_tasks!(MoviesStats, PrintMovieStats);
