//! Fuzz target `model`: see `seq_fuzz::model::run`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("model", seq_fuzz::model::run);
