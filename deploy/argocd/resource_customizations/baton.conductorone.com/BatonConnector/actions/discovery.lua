-- Argo CD actions for baton.conductorone.com/BatonConnector. Runs without Lua's standard libraries.
local spec = obj.spec
if type(spec) ~= "table" then
  spec = {}
end
local suspended = spec.suspend == true
-- Only credentials the operator mints are its to rotate; with a user-managed Secret the request would
-- do nothing, so the button says so instead.
local managed = type(spec.credentials) == "table" and spec.credentials.managed ~= nil
-- A sync now is a ConductorOne ForceSync (service mode, needs conductorOne) or a run of the CronJob
-- (OneShot mode); neither happens while the resource is suspended.
local syncable = (spec.mode == "OneShot" or type(spec.conductorOne) == "table") and not suspended

local actions = {}
actions["rotate"] = { ["disabled"] = not managed }
actions["restart"] = { ["disabled"] = false }
actions["suspend"] = { ["disabled"] = suspended }
actions["resume"] = { ["disabled"] = not suspended }
actions["sync"] = { ["disabled"] = not syncable }
return actions
