//! File formats read and written by biofm.
