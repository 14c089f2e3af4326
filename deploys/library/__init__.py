"""The library the deploy files call: settings, the service catalog, the host plan and the steps.

``deploys/*.py`` are the files a user runs (tiers and tags); nothing here is run by pyinfra directly.
Arrows point one way: ``deploys/*.py`` → ``deploys.library`` → ``operations`` → ``facts``.
"""
