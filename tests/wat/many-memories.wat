;; 32 linear memories of 64 MiB each: 2 GiB if the memory limit applied per memory.
(component
  (core module $m
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (memory 1024) (memory 1024) (memory 1024) (memory 1024)
    (func (export "answer") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
