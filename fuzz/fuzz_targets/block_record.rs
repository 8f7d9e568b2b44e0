//! Fuzz target `block_record`: see `seq_fuzz::block_record`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("block_record", seq_fuzz::block_record);
