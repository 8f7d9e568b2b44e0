//! Fuzz target `stream_codecs`: see `seq_fuzz::stored::run`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("stream_codecs", seq_fuzz::stored::run);
