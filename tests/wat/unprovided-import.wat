;; Imports a host function nobody granted: the admin interface of the host.
(component
  (import "acme:admin/secrets@1.0.0" (instance $secrets
    (export "read" (func (result u32)))))
  (core func $read (canon lower (func $secrets "read")))
  (core module $m
    (import "secrets" "read" (func $read (result i32)))
    (func (export "answer") (result i32) call $read))
  (core instance $i (instantiate $m
    (with "secrets" (instance (export "read" (func $read))))))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
