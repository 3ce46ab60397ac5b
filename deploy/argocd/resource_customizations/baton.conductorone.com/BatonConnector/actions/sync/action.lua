-- The operator acts on each new value and never removes the annotation, so every request carries
-- a fresh timestamp. Argo CD offers os only through require when standard libraries are off.
local os = require("os")
if type(obj.metadata.annotations) ~= "table" then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["baton.conductorone.com/sync-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
