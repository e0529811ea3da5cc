"""What a person reads in the Dagster UI about a video asset, one module per job.

Dagster renders ``MetadataValue.md`` with react-markdown (CommonMark + GFM through remark-gfm, no raw HTML,
rehype-sanitize's GitHub schema plus ``data:`` image sources), inline below 1,000 characters, otherwise behind
``[Show Markdown]`` in a dialog 80 % of the window wide (read in dagster-webserver 1.13.27's UI bundle,
``MarkdownWithPlugins`` and ``MetadataEntry``, and seen in Chromium with ``tools/screenshots.py``). So:

* :mod:`~minimax_dagster.metadata.markdown`: everything that comes from a dataset or the API (prompt, id, error
  text) is escaped and shows literally; sizes and durations in the units a person reads;
* :mod:`~minimax_dagster.metadata.thumbnails`: posters are small inline JPEG thumbnails (``data:`` URIs), never
  the full-size remote poster: nothing in the table makes a viewer's browser load a URL;
* :mod:`~minimax_dagster.metadata.links`: links open in a browser (a CDN, the S3-compatible endpoint, or the AWS
  console), never a bare ``s3://``;
* :mod:`~minimax_dagster.metadata.tables`: the counts, the table of videos and the metadata of a
  materialization.
"""
