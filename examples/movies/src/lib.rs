//! `movies`: the fix-and-retry story.
//!
//! `MoviesStats { titles, catalog_url? }` submits one `PrintMovieStats` per
//! title. Each looks its title up, sets its display name to the title and logs
//! the release date. The catalog is fetched over HTTP from `catalog_url` (a
//! JSON object of title -> release date; the host must allow its host, see
//! `POST /v1/modules?allow_http=`) or, without one, is the small catalog
//! bundled in the component. With `api_key_secret`, the request carries the
//! value of that secret as `?apikey=` (grant it at upload,
//! `sandflow module upload --secrets NAME`; the host redacts it from the
//! logs). A fetched catalog page is kept in the job cache (`catalog/...`),
//! so the tasks of one job fetch it once when they run one after another.
//!
//! Built plainly, the module's task types are `v1.0` and `PrintMovieStats`
//! has a bug: a title missing from the catalog fails the task
//! (`KeyError('Title')`). Built with `--features fixed` they are `v1.1`, and
//! it logs "Movie release date not found" instead. Upload v1.1 next to v1.0
//! and retry the failed job: the failed task runs again on v1.1 (same major
//! version, newer minor), and nothing that was computed runs twice. (The
//! whole module moves to v1.1: a `name@version` another module implements
//! is not taken over without `?replace=true`.)

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
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
// Both task types are v1.0, or v1.1 with the fix.
#[cfg_attr(not(feature = "fixed"), task(version = "v1.0"))]
#[cfg_attr(feature = "fixed", task(version = "v1.1"))]
pub struct MoviesStats {
    pub titles: Vec<String>,
    /// Where to fetch the catalog from; the bundled one when absent.
    #[serde(default)]
    pub catalog_url: Option<String>,
    /// The secret holding the catalog's API key, if it needs one.
    #[serde(default)]
    pub api_key_secret: Option<String>,
}

impl Task for MoviesStats {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        for title in &self.titles {
            ctx.submit_subtask(&PrintMovieStats {
                title: title.clone(),
                catalog_url: self.catalog_url.clone(),
                api_key_secret: self.api_key_secret.clone(),
            })?;
        }
        Ok(())
    }
}

/// Looks one title up and logs its release date.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
// Both task types are v1.0, or v1.1 with the fix.
#[cfg_attr(not(feature = "fixed"), task(version = "v1.0"))]
#[cfg_attr(feature = "fixed", task(version = "v1.1"))]
pub struct PrintMovieStats {
    pub title: String,
    /// Where to fetch the catalog from; the bundled one when absent.
    #[serde(default)]
    pub catalog_url: Option<String>,
    /// The secret holding the catalog's API key, if it needs one.
    #[serde(default)]
    pub api_key_secret: Option<String>,
}

type Catalog = std::collections::BTreeMap<String, String>;

impl PrintMovieStats {
    /// The release date of the title, if the catalog has it.
    fn lookup(&self, ctx: &Context) -> Result<Option<String>, Error> {
        let Some(url) = &self.catalog_url else {
            return Ok(CATALOG.iter().find(|(t, _)| *t == self.title).map(|(_, d)| (*d).to_owned()));
        };
        // One cache key per page: the URL, its `/`s made harmless.
        let page = format!("catalog/{}", url.replace('/', "|"));
        let catalog = match ctx.cache().get_json::<Catalog>(&page)? {
            Some(catalog) => catalog,
            None => {
                let catalog = self.fetch(ctx, url)?;
                ctx.cache().put_json(&page, &catalog)?;
                catalog
            }
        };
        Ok(catalog.get(&self.title).cloned())
    }

    /// Fetches the catalog page at `url`, with the API key if one is named.
    fn fetch(&self, ctx: &Context, url: &str) -> Result<Catalog, Error> {
        let request = match &self.api_key_secret {
            Some(secret) => format!("{url}?apikey={}", ctx.secret(secret)?),
            None => url.to_owned(),
        };
        let response = sandflow_sdk::http::get(&request)?;
        if response.status != 200 {
            return Err(format!("catalog {url} answered {}", response.status).into());
        }
        let catalog: Catalog = response.json()?;
        ctx.debug("catalog fetched").field("url", &request).field("titles", catalog.len());
        Ok(catalog)
    }
}

impl Task for PrintMovieStats {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        let _span = ctx.span("fetch-movie-stats").attr("movie.title", &self.title).enter();
        match self.lookup(ctx)? {
            Some(released) => {
                ctx.set_display(&self.title);
                ctx.info("Movie release date fetched")
                    .field("title", &self.title)
                    .field("released", released);
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
