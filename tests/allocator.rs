//! The counting allocator (INFO `used_memory`): alone in its process, so nothing else
//! moves the total while it looks.

#[test]
fn allocations_show_in_the_total_and_frees_leave_it() {
    let before = hashd::alloc::allocated();
    let v: Vec<u8> = vec![1; 64 << 20];
    let during = hashd::alloc::allocated();
    assert!(
        during >= before + (63 << 20),
        "64 MiB allocated: {before} -> {during}"
    );
    assert!(hashd::alloc::peak() >= during);
    drop(v);
    let after = hashd::alloc::allocated();
    assert!(after + (63 << 20) <= during, "freed: {during} -> {after}");
}
