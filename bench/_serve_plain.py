"""The web app reading Redis on every request (no in-process copies): the access pattern
bench/serve.py compares the default against. `gunicorn '_serve_plain:create_app()'`."""

from feedsvc.web import create_app as _create_app


def create_app():
    return _create_app(near_cache=False)
