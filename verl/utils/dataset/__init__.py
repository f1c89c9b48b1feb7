"""Demonstration datasets: file formats, statistics and chunked targets."""
