// Placeholder: implemented by the media work in progress.
