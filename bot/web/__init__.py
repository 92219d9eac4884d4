"""The veille's public home: the site, its live feeds and the moderation desk (`numpolville
serve`, or `numpolville run` with `[web] enabled`). See `app.create_app`."""
