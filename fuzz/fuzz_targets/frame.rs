//! Fuzz target `frame`: see `seq_fuzz::frame_target`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("frame", seq_fuzz::frame_target);
