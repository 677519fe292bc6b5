"""The lab from the installed package: its files (:mod:`obslab.lab.files`), its ``.env``
(:mod:`obslab.lab.env`), the engine (:mod:`obslab.lab.engine`) and ``obslab lab`` (:mod:`obslab.lab.command`)."""
