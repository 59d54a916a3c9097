"""Unit tests of the movie tasks, run natively (`python -m unittest` with
the SDK's `src`, this directory and `v1.1` on `PYTHONPATH`): no host, no build."""

import unittest

from movies import MoviesStats, PrintMovieStats

from sandflow.testing import run


class MoviesTest(unittest.TestCase):
    def test_the_root_submits_one_lookup_per_title(self):
        done = run(MoviesStats(["The Matrix", "Shrek 2"]))
        self.assertIsNone(done.error)
        self.assertEqual([s.task for s in done.subtasks], [PrintMovieStats("The Matrix"), PrintMovieStats("Shrek 2")])
        self.assertEqual(done.display, "MoviesStats(2)")

    def test_a_found_title_is_logged_with_its_release_date(self):
        done = run(PrintMovieStats("Shrek 2"))
        self.assertEqual(done.logs, [("info", "Movie release date fetched", {"title": "Shrek 2", "released": "19 May 2004"})])
        self.assertEqual(done.spans, [("fetch-movie-stats", {"movie.title": "Shrek 2"})])

    def test_a_missing_title_is_reported_not_failed(self):
        done = run(PrintMovieStats("Sandflow - The Movie"))
        self.assertIsNone(done.error)
        self.assertEqual(done.display, "NotFound: Sandflow - The Movie")


if __name__ == "__main__":
    unittest.main()
