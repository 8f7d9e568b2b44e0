//! Fuzz target `sequence_def`: see `seq_fuzz::sequence_def`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("sequence_def", seq_fuzz::sequence_def);
