-- Argo CD actions for baton.conductorone.com/BatonConnector. Runs without Lua's standard libraries.
local spec = obj.spec
if type(spec) ~= "table" then
  spec = {}
end
local suspended = spec.suspend == true
-- Only credentials the operator mints are its to rotate; with a user-managed Secret the request would
-- do nothing, so the button says so instead.
local managed = type(spec.credentials) == "table" and spec.credentials.managed ~= nil

local actions = {}
actions["rotate"] = { ["disabled"] = not managed }
actions["restart"] = { ["disabled"] = false }
actions["suspend"] = { ["disabled"] = suspended }
actions["resume"] = { ["disabled"] = not suspended }
return actions
