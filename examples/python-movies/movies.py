"""`python-movies`: the fix-and-retry story, in Python.

`MoviesStats(titles)` submits one `PrintMovieStats(title)` per title; each
looks its title up in the catalog, sets its display name to the title and
logs the release date.

`release.py` says which release is built, from the directory given with
`-p`: `v1.0/release.py` is the first release, whose `PrintMovieStats`
fails with `KeyError('Title')` on a title the catalog does not have;
`v1.1/release.py` has the fix. Build both (`python -m sandflow build
movies.py -p v1.0 -o movies-v1.0.wasm`, the same with `v1.1`), upload
v1.0, submit, watch one task fail, upload v1.1 and retry the job: only the
failed task runs again, on v1.1.
"""

from release import FIXED, VERSION

from sandflow import Context, Task

#: What the catalog answers for each title it knows (as a movie database
#: would: a record with `Title` and `Released`).
CATALOG = {
    "The Matrix": {"Title": "The Matrix", "Released": "31 Mar 1999"},
    "Shrek 2": {"Title": "Shrek 2", "Released": "19 May 2004"},
    "The Avengers": {"Title": "The Avengers", "Released": "04 May 2012"},
    "Spirited Away": {"Title": "Spirited Away", "Released": "20 Jul 2001"},
}

NOT_FOUND = {"Response": "False", "Error": "Movie not found!"}


class MoviesStats(Task, version=VERSION):
    titles: list[str]

    def execute(self, ctx: Context) -> None:
        ctx.current_task.display = f"MoviesStats({len(self.titles)})"
        for title in self.titles:
            ctx.submit_subtask(PrintMovieStats(title))


class PrintMovieStats(Task, version=VERSION):
    title: str

    def execute(self, ctx: Context) -> None:
        with ctx.tracer.span("fetch-movie-stats", attributes={"movie.title": self.title}):
            response = CATALOG.get(self.title, NOT_FOUND)
        if FIXED and not ("Title" in response and "Released" in response):
            ctx.current_task.display = f"NotFound: {self.title}"
            ctx.logger.info("Movie release date not found", title=self.title)
            return
        ctx.current_task.display = response["Title"]
        ctx.logger.info("Movie release date fetched", title=response["Title"], released=response["Released"])
