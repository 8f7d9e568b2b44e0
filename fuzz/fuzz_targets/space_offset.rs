//! Fuzz target `space_offset`: see `seq_fuzz::space_offset`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("space_offset", seq_fuzz::space_offset);
