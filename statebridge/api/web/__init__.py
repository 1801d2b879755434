"""The browser demo: a page at /demo (combined face only) that shows what each server keeps."""
