//! Fuzz target `space_offset_hex`: see `seq_fuzz::space_offset_hex`.
#![cfg_attr(feature = "libfuzzer", no_main)]

seq_fuzz::seq_fuzz_target!("space_offset_hex", seq_fuzz::space_offset_hex);
