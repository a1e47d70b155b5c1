"""An app factory that takes 2 s before building the app, for the web server's start-up races
(`python -m feedsvc.web slow_start:create_app`, with this folder on PYTHONPATH)."""

import time

import feedsvc.web

STARTUP_SECONDS = 2


def create_app():
    time.sleep(STARTUP_SECONDS)
    return feedsvc.web.create_app()
