;; Exports nothing at all.
(module)
