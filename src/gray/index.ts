export { parsePercent, formatPercent, FULL_BASIS_POINTS } from './percent.js';
export { bucketOf, Bucketer } from './bucket.js';
export { SHIM_MODES, isShimMode, TableRouter, type ShimMode, type Route, type WritePlan, type ReadSide, type GraySetting, type ShimSetting } from './route.js';
export { checkGates, type GateResult, type GateName } from './gates.js';
export { readSettings, readHistory, type HistoryEntry, type SettingsSnapshot } from './settings.js';
export {
  setGray,
  rollbackGray,
  setShimMode,
  showSettings,
  settingsHistory,
  checkMember,
  type ChangeContext,
  type ChangeResult,
  type GrayChange,
  type TableView,
  type MemberCheck,
} from './operations.js';
