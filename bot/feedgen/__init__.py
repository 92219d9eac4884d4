"""Bluesky custom feeds: "numpolville · Projet" and the others, pinnable in the app.

The bot's web server answers the AppView's `getFeedSkeleton` with the at:// URIs of the classified
posts of a category, newest first (`skeleton`), verifies the service token the AppView passes on
(`auth`), serves its did:web document (`routes`); `publish` writes the generator records into the
bot's repository. Starlette is imported by `routes` alone.
"""
