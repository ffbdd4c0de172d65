"""GIF search through the server (issue 9, docs/gif.md): a provider interface
(``provider``), Giphy's REST API (``giphy``) and the cached, rate-limited service the
``/api/v1/gifs`` routes call (``service``)."""
