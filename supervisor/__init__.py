"""The lambda-supervisor runtime process: fetches events, drives workers, posts results."""
