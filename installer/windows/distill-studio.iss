; Inno Setup script: a Windows installer for Distill Studio, from the folder PyInstaller builds.
; NOT built or tested by this project (no Windows machine); see installer/README.md.
;
; On Windows, in the repository:
;   1. make the venv and install the app:  py -3.11 -m venv .venv
;      .venv\Scripts\pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
;      (or a CUDA build), then  .venv\Scripts\pip install -e . pyinstaller Pillow
;   2. build:  .venv\Scripts\pyinstaller --noconfirm installer\distill-studio.spec
;      gives dist\distill-studio\ with distill-studio.exe (the windowed app) and
;      distill-engine.exe (the console engine the app starts)
;   3. compile this script with Inno Setup 6:  iscc installer\windows\distill-studio.iss
;      gives dist\DistillStudio-0.1.0-setup.exe
; Installs per user (no administrator rights), into %LOCALAPPDATA%\Programs\Distill Studio.

#define AppName "Distill Studio"
#define AppVersion "0.1.0"
#define Bundle "..\..\dist\distill-studio"

[Setup]
AppId={{6C1B8E7A-3F0D-4E55-9A61-2D7C9E4B0F13}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Distill Studio
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=DistillStudio-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\distill-studio.exe
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "projectfiles"; Description: "Open .distill.json project files with Distill Studio"; GroupDescription: "File types:"

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\distill-studio.exe"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\distill-studio.exe"; Tasks: desktopicon

[Registry]
; Windows matches the last extension (.json), so this registers a "Open with Distill Studio" entry
; for .json files rather than taking them over
Root: HKA; Subkey: "Software\Classes\Applications\distill-studio.exe\shell\open\command"; ValueType: string; ValueData: """{app}\distill-studio.exe"" ""%1"""; Flags: uninsdeletekey; Tasks: projectfiles
Root: HKA; Subkey: "Software\Classes\.json\OpenWithList\distill-studio.exe"; Flags: uninsdeletekey; Tasks: projectfiles

[Run]
Filename: "{app}\distill-studio.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; Runs, exported models and settings live in %LOCALAPPDATA%\distill-studio and the registry's
; user settings; the uninstaller leaves them, as they are the user's work.
